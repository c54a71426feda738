// A camera's day in counts, drawn by the page as SVG and a table: people in view per 5 minutes, counts per hour
// (people, each line's crossings each way, each zone's entries), and how long stays in each zone lasted.
"use strict";

function drawOccupancy(counts, from, to) {
  const svg = $("occupancy-chart"), width = 1000, left = 70, height = 90;
  const x = (t) => left + (Math.min(Math.max(t, from), to) - from) / (to - from) * (width - left - 10);
  const most = Math.max(1, ...counts.occupancy.map((s) => s.peak));
  const y = (n) => 6 + (most - n) / most * (height - 12);
  const midnight = Date.parse(`${counts.day}T00:00:00Z`), step = counts.step_s * 1000;
  svg.replaceChildren(shape("text", {x: 0, y: 14, class: "lane"}, "in view"));
  for (const level of [0, most]) {
    svg.append(shape("line", {x1: left, x2: width - 10, y1: y(level), y2: y(level), class: "grid"}));
    svg.append(shape("text", {x: left - 6, y: y(level) + 4, class: "tick-label end"}, String(level)));
  }
  for (const s of counts.occupancy) {
    const start = midnight + s.from_s * 1000, end = start + step;
    if (end < from || start > to) continue;
    const bar = shape("rect", {x: x(start), y: y(s.peak), width: Math.max(2, x(end) - x(start) - 1),
                               height: y(0) - y(s.peak), class: "occupancy", "data-peak": s.peak});
    bar.append(shape("title", {}, `${clock(new Date(start).toISOString())}: at most ${s.peak} in view, ` +
                                  `${s.mean} on average`));
    svg.append(bar);
    svg.append(shape("line", {x1: x(start), x2: x(end) - 1, y1: y(s.mean), y2: y(s.mean), class: "occupancy-mean"}));
  }
  axis(svg, x, from, to, height, width);
}

function hourTable(counts) {
  const lines = [...new Set(counts.hours.flatMap((h) => Object.keys(h.lines)))].sort();
  const zones = [...new Set(counts.hours.flatMap((h) => Object.keys(h.zones)))].sort();
  const head = ["hour (UTC)", "people", ...lines.flatMap((l) => [`${l} in`, `${l} out`]),
                ...zones.map((z) => `${z} entries`)];
  const most = Math.max(1, ...counts.hours.map((h) => h.people));
  $("hour-counts").replaceChildren(
    element("thead", {}, element("tr", {}, ...head.map((h) => element("th", {}, h)))),
    element("tbody", {}, ...counts.hours.map((h) => {
      const people = element("td", {class: "people"}, String(h.people));
      people.append(element("span", {class: "bar", style: `width: ${Math.round(h.people / most * 6)}rem`}));
      return element("tr", {"data-hour": h.hour}, element("td", {}, h.hour.slice(11, 16)), people,
        ...lines.flatMap((l) => ["in", "out"].map((way) => element("td", {}, String(h.lines[l]?.[way] ?? 0)))),
        ...zones.map((z) => element("td", {}, String(h.zones[z]?.entries ?? 0))));
    })));
}

function dwellCharts(counts) {
  $("dwell-charts").replaceChildren(...Object.entries(counts.zones).map(([name, zone]) => {
    const svg = shape("svg", {class: "dwell", role: "img", "data-zone": name,
                              "aria-label": `how long stays in ${name} lasted`});
    const most = Math.max(1, ...zone.distribution.map((b) => b.stays)), row = 16;
    zone.distribution.forEach((bin, i) => {
      const label = bin.to_s === null ? `over ${span_(bin.from_s)}` : `${span_(bin.from_s)}-${span_(bin.to_s)}`;
      svg.append(shape("text", {x: 0, y: i * row + 12, class: "lane"}, label));
      svg.append(shape("rect", {x: 80, y: i * row + 2, height: row - 4, width: Math.max(0, bin.stays / most * 300),
                                class: "dwell-bar", "data-stays": bin.stays}));
      svg.append(shape("text", {x: 86 + bin.stays / most * 300, y: i * row + 12, class: "lane"}, String(bin.stays)));
    });
    svg.setAttribute("viewBox", `0 0 420 ${zone.distribution.length * row}`);
    return element("figure", {}, svg, element("figcaption", {},
      `${name}: ${zone.stays} stays, median ${zone.median_s} s, longest ${zone.longest_s} s`));
  }));
}

const span_ = (s) => s < 60 ? `${s} s` : `${s / 60} min`;

function drawCounts(counts, from, to) {
  $("counts").hidden = !counts.hours.length && !counts.occupancy.length;
  $("counts-title").textContent = `${counts.people} people` +
    (counts.tracks > counts.people ? ` (${counts.tracks} tracks, ${counts.tracks - counts.people} likely seen twice)`
                                   : "") +
    (counts.peak_at ? `; at most ${counts.peak_people} in view at once, at ${clock(counts.peak_at)}` : "");
  drawOccupancy(counts, from, to);
  hourTable(counts);
  dwellCharts(counts);
}
