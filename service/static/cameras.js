// The cameras page: each camera's state, and one camera's day drawn as SVG (no library, nothing from outside).
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function shape(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

const clock = (iso) => iso ? new Date(iso).toISOString().slice(11, 19) : "-";
const words = (type) => String(type || "incident").replaceAll("_", " ");
const scoreColour = (score) => score === null || score === undefined ? "#b8bec8" : `hsl(${score * 1.2}, 62%, 42%)`;

function cameraCard(camera) {
  const state = camera.silence ? "silent" : camera.state;
  const node = element("article", {class: `camera ${state.replace(" ", "-")}`, "data-camera": camera.name,
                                   tabindex: "0"},
    camera.thumbnail_url ? element("img", {src: camera.thumbnail_url, alt: `latest from ${camera.name}`})
                         : element("div", {class: "no-thumbnail"}, "no segment analysed yet"),
    element("h3", {}, camera.name, " ", element("span", {class: "badge"}, state)),
    element("p", {}, `last packet ${clock(camera.last_packet_at)} · last segment ${clock(camera.last_segment_at)} UTC`),
    element("p", {}, `${camera.gaps.length} gap(s) in 24 h`),
    element("p", {class: "note"}, camera.silence || camera.last_error || ""));
  const open = () => showDay(camera.name, $("day-date").value || new Date().toISOString().slice(0, 10));
  node.addEventListener("click", open);
  node.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return node;
}

async function listCameras() {
  try {
    const found = await getJSON("/api/cameras");
    $("camera-list").replaceChildren(...found.cameras.map(cameraCard));
    $("status").textContent = found.cameras.length ? `${found.cameras.length} cameras`
      : "no cameras yet: list them in cameras.yaml and run `reelgraph record`";
    return found.cameras;
  } catch (error) {
    $("status").textContent = error.message;
    return [];
  }
}

function size(bytes) {
  const units = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]];
  const [unit, scale] = units.find(([, scale]) => bytes >= scale) || ["B", 1];
  return `${(bytes / scale).toFixed(scale === 1 ? 0 : 1)} ${unit}`;
}

async function showStorage() {
  try {
    const found = await getJSON("/api/storage");
    $("storage-volumes").replaceChildren(
      element("li", {}, `footage arriving: ${size(found.bytes_per_day)} a day (last 7 days)`),
      ...found.volumes.map((volume) => element("li", {class: "volume", "data-tier": volume.tier},
        volume.free === null ? `${volume.tier} tier: an S3 bucket (no size limit to watch)`
          : `${volume.tier} tier: ${size(volume.free)} free of ${size(volume.total)}, floor ${size(volume.floor)}` +
            (volume.days_left === null ? "" : volume.days_left > 3650 ? "; over ten years left at this rate"
              : `; ${volume.days_left.toFixed(1)} days left at this rate`))));
    const rows = new Map();
    for (const usage of found.days) {
      const key = `${usage.camera} ${usage.day}`;
      if (!rows.has(key)) rows.set(key, {camera: usage.camera, day: usage.day, hot: 0, cold: 0, expired: 0});
      rows.get(key)[usage.tier] += usage.bytes;
    }
    $("storage-days").tBodies[0].replaceChildren(...[...rows.values()].map((row) => element("tr", {},
      element("td", {}, row.camera), element("td", {}, row.day), element("td", {}, size(row.hot)),
      element("td", {}, size(row.cold)), element("td", {}, row.expired ? `${size(row.expired)} removed` : "-"))));
  } catch (error) {
    $("storage-volumes").replaceChildren(element("li", {}, `storage: ${error.message}`));
  }
}

function play(url, offset, what) {
  const video = $("day-video");
  const start = () => { video.currentTime = offset; video.play().catch(() => {}); };
  if (video.getAttribute("src") === url && video.readyState > 0) start();
  else {
    video.addEventListener("loadedmetadata", start, {once: true});
    video.src = url;
  }
  $("day-playing").textContent = `playing ${what}`;
}

function span(day) {
  const times = [];
  for (const s of day.segments) {
    const start = Date.parse(s.start);
    times.push(start, start + (s.seconds || 0) * 1000);
  }
  for (const g of day.gaps) times.push(Date.parse(g.from), g.to ? Date.parse(g.to) : Date.now());
  const midnight = Date.parse(`${day.day}T00:00:00Z`);
  if (!times.length) return [midnight, midnight + 86400000];
  const from = Math.max(midnight, Math.min(...times)), to = Math.min(midnight + 86400000, Math.max(...times));
  if (to <= from) return [midnight, midnight + 86400000];  // nothing inside the day (a gap from before it)
  const pad = Math.max((to - from) * 0.02, 1000);
  return [from - pad, to + pad];
}

function axis(svg, x, from, to, y, width) {
  const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 10800, 21600].map((s) => s * 1000);
  const step = steps.find((s) => (to - from) / s <= 8) || 21600000;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    svg.append(shape("line", {x1: x(t), x2: x(t), y1: 0, y2: y, class: "tick"}));
    svg.append(shape("text", {x: x(t), y: y + 12, class: "tick-label"}, new Date(t).toISOString().slice(11, 19)));
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${y + 16}`);
}

function drawTimeline(day, from, to) {
  const svg = $("timeline"), width = 1000, left = 70, lanes = {segments: 6, incidents: 36, gaps: 60};
  const x = (t) => left + (Math.min(Math.max(t, from), to) - from) / (to - from) * (width - left - 10);
  svg.replaceChildren();
  for (const [name, y] of Object.entries(lanes)) svg.append(shape("text", {x: 0, y: y + 13, class: "lane"}, name));
  for (const s of day.segments) {
    const start = Date.parse(s.start), end = start + (s.seconds || 0) * 1000;
    const rect = shape("rect", {x: x(start), y: lanes.segments, width: Math.max(1, x(end) - x(start)), height: 22,
                                fill: scoreColour(s.safety_score), class: `segment ${s.status}`,
                                "data-partition": s.partition_key});
    rect.append(shape("title", {}, `${s.object_key}: ${s.safety_score ?? "not analysed yet"} (${s.status})`));
    rect.addEventListener("click", () => play(s.video_url, 0, s.object_key));
    svg.append(rect);
  }
  for (const incident of day.incidents) {
    const at = Date.parse(incident.at);
    const marker = shape("circle", {cx: x(at), cy: lanes.incidents + 9, r: 7, class: "incident-marker",
                                    "data-partition": incident.partition_key, "data-start": incident.start_s});
    marker.append(shape("title", {}, `${words(incident.type)} at ${clock(incident.at)}: ${incident.detail}`));
    marker.addEventListener("click", () => play(incident.video_url, incident.start_s || 0,
                                                `${words(incident.type)} at ${clock(incident.at)}`));
    svg.append(marker);
  }
  for (const gap of day.gaps) {
    const start = Date.parse(gap.from), end = gap.to ? Date.parse(gap.to) : Date.now();
    const rect = shape("rect", {x: x(start), y: lanes.gaps, width: Math.max(2, x(end) - x(start)), height: 16,
                                class: "gap"});
    rect.append(shape("title", {}, `no recording ${clock(gap.from)}-${gap.to ? clock(gap.to) : "now"}: ${gap.reason}`));
    svg.append(rect);
  }
  axis(svg, x, from, to, 82, width);
}

function drawScores(day, from, to) {
  const svg = $("score-chart"), width = 1000, left = 70, height = 90;
  const x = (t) => left + (Math.min(Math.max(t, from), to) - from) / (to - from) * (width - left - 10);
  const y = (score) => 6 + (100 - score) / 100 * (height - 12);
  svg.replaceChildren(shape("text", {x: 0, y: 14, class: "lane"}, "safety"));
  for (const level of [0, 50, 100]) {
    svg.append(shape("line", {x1: left, x2: width - 10, y1: y(level), y2: y(level), class: "grid"}));
    svg.append(shape("text", {x: left - 6, y: y(level) + 4, class: "tick-label end"}, String(level)));
  }
  const points = day.segments.filter((s) => s.safety_score !== null && s.safety_score !== undefined)
    .map((s) => [Date.parse(s.start) + (s.seconds || 0) * 500, s.safety_score]);
  if (points.length) {
    svg.append(shape("polyline", {points: points.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), class: "scores"}));
    for (const [t, v] of points) svg.append(shape("circle", {cx: x(t), cy: y(v), r: 3, class: "score-point"}));
  }
  axis(svg, x, from, to, height, width);
}

async function showDay(camera, date) {
  $("day").hidden = false;
  $("day-date").value = date;
  $("day-title").textContent = `${camera} on ${date}`;
  $("day").dataset.camera = camera;
  history.replaceState(null, "", `?camera=${encodeURIComponent(camera)}&day=${date}`);
  try {
    const where = `/api/cameras/${encodeURIComponent(camera)}`;
    const counted = getJSON(`${where}/counts?day=${date}`);  // its own request: the day shows without it
    const day = await getJSON(`${where}/day?day=${date}`);
    const [from, to] = span(day);
    drawTimeline(day, from, to);
    drawScores(day, from, to);
    counted.then((counts) => drawCounts(counts, from, to), () => { $("counts").hidden = true; });
    $("day-incidents").replaceChildren(...day.incidents.map((incident) => {
      const button = element("button", {type: "button", class: "incident", "data-start": incident.start_s},
        `${words(incident.type)} at ${clock(incident.at)}: ${incident.detail}` +
        (incident.confidence == null ? "" : ` (confidence ${Math.round(incident.confidence * 100)}%)`));
      button.addEventListener("click", () => play(incident.video_url, incident.start_s || 0,
                                                  `${words(incident.type)} at ${clock(incident.at)}`));
      return element("li", {}, button);
    }));
    $("status").textContent = `${camera}: ${day.segments.length} segments, ${day.incidents.length} incidents, ` +
      `${day.gaps.length} gaps on ${date}`;
  } catch (error) {
    $("status").textContent = error.message;
  }
}

$("day-date").addEventListener("change", () => {
  if ($("day").dataset.camera) showDay($("day").dataset.camera, $("day-date").value);
});
const wanted = new URLSearchParams(location.search);
showStorage();
listCameras().then(() => {
  if (wanted.get("camera")) showDay(wanted.get("camera"), wanted.get("day") || new Date().toISOString().slice(0, 10));
});
