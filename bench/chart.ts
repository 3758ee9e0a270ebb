/** Draws the cases' panels as one SVG of horizontal bar charts, no dependencies. */
import { OURS, type ChartPanel } from "./report.js";

const WIDTH = 960;
const LABEL_WIDTH = 330;
const VALUE_WIDTH = 90;
const BAR_HEIGHT = 16;
const BAR_GAP = 4;
const GROUP_GAP = 12;
const PANEL_GAP = 28;
const FONT = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\"";

function escape(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

function colour(label: string): string {
  if (label === OURS || label.startsWith(`${OURS},`) || label.startsWith(`${OURS} `)) {
    return "#2563eb";
  }
  if (
    label.includes("floor") ||
    label.startsWith("for loop") ||
    label.startsWith("loop") ||
    label.startsWith("hand-written") ||
    label.startsWith("setTimeout race") ||
    label.startsWith("try/catch loop")
  ) {
    return "#94a3b8";
  }
  return "#cbd5e1";
}

/**
 * Bar length for a value: proportional to it (`linear`), or to its logarithm above a floor a
 * little under the smallest value (`log`), so that 1× and 100× both stay readable. Values
 * that cannot be drawn (≤ 0 on a log scale, NaN) get no bar.
 */
function scaler(
  scale: "linear" | "log",
  values: readonly number[],
  space: number,
): (value: number) => number {
  const finite = values.filter((value) => Number.isFinite(value) && value > 0);
  const max = Math.max(...finite);
  if (scale === "log") {
    const min = Math.min(...finite) / 2;
    const span = Math.log(max / min);
    return (value) =>
      Number.isFinite(value) && value > 0 ? Math.max(1, (Math.log(value / min) / span) * space) : 0;
  }
  return (value) =>
    Number.isFinite(value) && value > 0 && max > 0 ? Math.max(1, (value / max) * space) : 0;
}

export function drawChart(title: string, subtitle: string, panels: readonly ChartPanel[]): string {
  const parts: string[] = [];
  let y = 30;
  parts.push(
    `<text x="16" y="${String(y)}" font-size="18" font-weight="600">${escape(title)}</text>`,
  );
  y += 20;
  parts.push(
    `<text x="16" y="${String(y)}" font-size="12" fill="#475569">${escape(subtitle)}</text>`,
  );
  y += 22;
  const legend: [string, string][] = [
    ["#2563eb", OURS],
    ["#94a3b8", "hand-written floor (and plain loop)"],
    ["#cbd5e1", "alternatives"],
  ];
  let x = 16;
  for (const [fill, label] of legend) {
    parts.push(
      `<rect x="${String(x)}" y="${String(y - 10)}" width="12" height="12" rx="2" fill="${fill}"/>`,
      `<text x="${String(x + 18)}" y="${String(y)}" font-size="12" fill="#334155">${escape(label)}</text>`,
    );
    x += 40 + label.length * 7;
  }
  y += PANEL_GAP;
  const barSpace = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 32;
  for (const panel of panels) {
    parts.push(
      `<text x="16" y="${String(y)}" font-size="15" font-weight="600">${escape(panel.title)}</text>`,
    );
    y += 16;
    const unit = panel.scale === "log" ? `${panel.unit}; logarithmic scale` : panel.unit;
    parts.push(
      `<text x="16" y="${String(y)}" font-size="11" fill="#64748b">${escape(unit)}</text>`,
    );
    y += 10;
    const values = panel.groups.flatMap((group) => group.bars.map((bar) => bar.value));
    const length = scaler(panel.scale ?? "linear", values, barSpace);
    for (const group of panel.groups) {
      y += GROUP_GAP + 4;
      parts.push(
        `<text x="16" y="${String(y)}" font-size="12" font-weight="600" fill="#334155">${escape(group.label)}</text>`,
      );
      y += 6;
      for (const bar of group.bars) {
        const width = length(bar.value);
        const fill = colour(bar.label);
        parts.push(
          `<text x="${String(LABEL_WIDTH + 8)}" y="${String(y + BAR_HEIGHT - 4)}" font-size="12" text-anchor="end" fill="#0f172a"${bar.label === OURS ? ' font-weight="600"' : ""}>${escape(bar.label)}</text>`,
          `<rect x="${String(LABEL_WIDTH + 16)}" y="${String(y)}" width="${width.toFixed(1)}" height="${String(BAR_HEIGHT)}" rx="2" fill="${fill}"/>`,
          `<text x="${(LABEL_WIDTH + 22 + width).toFixed(1)}" y="${String(y + BAR_HEIGHT - 4)}" font-size="12" fill="#0f172a">${escape(bar.text)}</text>`,
        );
        y += BAR_HEIGHT + BAR_GAP;
      }
    }
    y += PANEL_GAP;
  }
  const height = y;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(WIDTH)}" height="${String(height)}" viewBox="0 0 ${String(WIDTH)} ${String(height)}" ${FONT}>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
