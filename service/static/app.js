// The search page: no framework, no build step, nothing fetched from outside this service.
"use strict";

function seconds(value) {
  const whole = Math.floor(value);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function when(hit) {
  return hit.starts_at ? new Date(hit.starts_at).toLocaleString() : `${seconds(hit.start_s)}-${seconds(hit.end_s)}`;
}

function title(hit) {
  if (hit.kind === "citation") return `[${hit.ref}]`;
  if (hit.kind === "incident") return `incident: ${hit.incident_type.replace("_", " ")}`;
  if (hit.kind === "summary") return "video summary";
  return `${hit.class_name} #${hit.track_id}`;
}

function card(hit) {
  const node = element("article", {class: `card ${hit.kind}`, "data-kind": hit.kind, "data-partition": hit.partition_key,
                                   "data-track": hit.track_id, "data-start": hit.start_s, tabindex: "0"},
    element("img", {src: hit.thumbnail_url, alt: title(hit), loading: "lazy"}),
    element("h3", {}, title(hit)),
    element("p", {class: "what"}, hit.text || ""),
    element("p", {class: "where"}, `${hit.camera || "no camera"} · ${hit.object_key}`),
    element("p", {class: "when"}, `${when(hit)} (at ${seconds(hit.start_s)} in the video)`),
    element("p", {class: `score ${hit.strength}`}, `${hit.strength} match`));
  if (hit.footage === "expired") node.append(element("p", {class: "expired"}, "footage removed: facts only"));
  if (hit.similar_url) {
    const more = element("button", {type: "button", class: "more"}, "more like this");
    more.addEventListener("click", (event) => { event.stopPropagation(); showSimilar(hit); });
    node.append(more);
  }
  node.addEventListener("click", () => play(hit));
  node.addEventListener("keydown", (event) => { if (event.key === "Enter") play(hit); });
  return node;
}

function show(hits, message) {
  $("results").replaceChildren(...hits.map(card));
  $("status").textContent = hits.length ? `${hits.length} results` : (message || "nothing matches");
}

async function runSearch(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  for (const name of ["q", "camera", "class", "color", "incident", "kind"]) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  const shown = new URLSearchParams(params);  // the page's own URL keeps what the inputs hold
  for (const name of ["since", "until"]) {
    if ($(name).value) {
      shown.set(name, $(name).value);
      params.set(name, new Date($(name).value).toISOString());  // the browser's local time, as UTC
    }
  }
  $("status").textContent = "searching...";
  $("answer").hidden = true;
  try {
    const asked = QUESTION.test(params.get("q") || "") ? ask(params) : null;
    const answer = await getJSON(`/api/search?${params}`);
    show(answer.hits, answer.message);
    history.replaceState(null, "", `?${shown}`);
    if (asked && await asked && !answer.hits.length) $("status").textContent = "answered from the counted facts";
  } catch (error) {
    $("results").replaceChildren();
    $("status").textContent = error.message;
  }
}

// A question (how many..., when was..., was anyone...?) is also answered: the number or the sentences, each
// citation a button that plays its moment.
const QUESTION = /^\s*(how|when|what|which|who|where|why|was|were|is|are|did|does|do|has|have)\b|\?\s*$/i;

let asking = 0;  // the latest question asked: an answer to an earlier one arriving late is dropped

async function ask(params) {
  const mine = ++asking;
  const wanted = new URLSearchParams();
  for (const name of ["q", "camera", "since", "until"]) if (params.get(name)) wanted.set(name, params.get(name));
  try {
    const found = await getJSON(`/api/ask?${wanted}`);
    if (mine !== asking) return false;
    const cited = new Map(found.citations.map((c) => [c.ref, c]));
    const text = element("p", {id: "answer-text"});
    for (const part of found.answer.split(/(\[\d+\])/)) {
      const citation = /^\[(\d+)\]$/.test(part) ? cited.get(Number(part.slice(1, -1))) : null;
      if (!citation) { text.append(part); continue; }
      const button = element("button", {type: "button", class: "citation", "data-ref": citation.ref,
                                        "data-start": citation.start_s}, part);
      button.addEventListener("click", () => play({...citation, kind: "citation", start_s: citation.start_s}));
      text.append(button);
    }
    $("answer").replaceChildren(text);
    $("answer").dataset.generator = found.generator;
    $("answer").hidden = false;
    return found.generator === "count";
  } catch (error) {
    if (mine !== asking) return false;
    $("answer").replaceChildren(element("p", {}, error.message));
    $("answer").hidden = false;
  }
}

async function showSimilar(hit) {
  $("status").textContent = "looking for similar tracks...";
  try {
    const answer = await getJSON(hit.similar_url);
    show(answer.hits, `nothing else looks like ${title(hit)}`);
    $("status").textContent = `more like ${title(hit)}: ${answer.hits.length} results`;
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function play(hit) {
  const video = $("video");
  $("player").hidden = false;
  $("player-title").textContent = `${title(hit)} in ${hit.object_key}, from ${seconds(hit.start_s)}`;
  $("player-dagster").hidden = !hit.dagster_url;
  if (hit.dagster_url) $("player-dagster").href = hit.dagster_url;
  const start = () => {
    video.currentTime = hit.start_s;
    video.play().catch(() => {});  // autoplay may be refused; the position is set either way
  };
  $("player-gone").hidden = Boolean(hit.clip_url);
  $("player-gone").textContent = hit.footage_note || "";
  video.hidden = !hit.clip_url;
  if (hit.clip_url) {
    video.addEventListener("loadedmetadata", start, {once: true});
    video.src = hit.clip_url.split("#")[0];
  } else {
    video.removeAttribute("src");  // no broken player: the note says where the footage went
    video.load();
  }
  $("player").scrollIntoView({behavior: "smooth"});
  try {
    const details = await getJSON(`/api/videos/${encodeURI(hit.partition_key)}`);
    const summary = details.summary;
    $("player-summary").textContent = summary ? summary.text : "";
    const incidents = summary ? summary.incidents : [];
    $("player-incidents").replaceChildren(...incidents.map((incident) => {
      const item = element("li", {}, element("button", {type: "button", "data-start": incident.start_t || 0},
        `${incident.type.replace("_", " ")} at ${seconds(incident.start_t || 0)}: ${incident.detail}` +
        (incident.confidence === undefined ? "" : ` (confidence ${Math.round(incident.confidence * 100)}%)`)));
      item.querySelector("button").addEventListener("click", () => { video.currentTime = incident.start_t || 0; });
      return item;
    }));
  } catch (error) {
    $("player-summary").textContent = error.message;
  }
}

$("search").addEventListener("submit", runSearch);
$("close").addEventListener("click", () => { $("video").pause(); $("player").hidden = true; });
const initial = new URLSearchParams(location.search);
for (const [name, value] of initial) if ($(name)) $(name).value = value;
if (initial.get("q")) runSearch();
