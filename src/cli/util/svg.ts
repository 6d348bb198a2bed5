// The fault benchmark as an SVG chart: ns per page by kind, JavaScript beside C, on a
// log scale (first touches range from a few ns to microseconds).
import type { FaultReport } from '../measure/faults';
import type { ScaleReport } from '../measure/scale';
import { formatSize } from './size';
import { formatNumber } from './table';

const escapeXml = (text: string): string => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The document's opening: white ground, a bold title and a grey line under it.
function chartHead(width: number, height: number, title: string, subtitle: string): string[] {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
}

// The two-colour legend under the bars: JavaScript, then the same in C.
function chartLegend(x: number, y: number, js: string, c: string): string[] {
  return [
    `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="#3b6fb6"/><text x="${x + 18}" y="${y}">${escapeXml(js)}</text>`,
    `<rect x="${x + 200}" y="${y - 10}" width="12" height="12" fill="#e08a2c"/><text x="${x + 218}" y="${y}">${escapeXml(c)}</text>`,
  ];
}

/** Renders the measured kinds of `report` as a standalone SVG document, one bar pair per kind. */
export function faultChart(report: FaultReport): string {
  const kinds = report.kinds;
  const labelWidth = 170;
  const plotWidth = 600;
  const barHeight = 12;
  const rowHeight = 2 * barHeight + 12;
  const top = 60;
  const width = labelWidth + plotWidth + 90;
  const height =
    top +
    Math.max(1, kinds.length) * rowHeight +
    50 +
    (report.skipped.length > 0 ? 16 * (report.skipped.length + 1) : 0);
  const values = kinds.flatMap((k) => [k.nsPerPage, k.nativeNsPerPage]).filter((v) => v > 0);
  const lowDecade = Math.floor(Math.log10(Math.min(1, ...values)));
  const highDecade = Math.max(lowDecade + 1, Math.ceil(Math.log10(Math.max(10, ...values))));
  const x = (ns: number): number =>
    labelWidth + ((Math.log10(Math.max(ns, 10 ** lowDecade)) - lowDecade) / (highDecade - lowDecade)) * plotWidth;
  const out = chartHead(
    width,
    height,
    `First-touch cost per page, ${formatSize(report.size)} mapping (log scale)`,
    `median of ${report.repeat}; ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}`,
  );
  const axisBottom = top + kinds.length * rowHeight;
  for (let decade = lowDecade; decade <= highDecade; decade++) {
    const gx = x(10 ** decade);
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${axisBottom}" stroke="#ddd"/>`);
    out.push(
      `<text x="${gx}" y="${axisBottom + 16}" text-anchor="middle" fill="#333">${decade >= 0 ? (10 ** decade).toLocaleString('en-US') : (10 ** decade).toFixed(-decade)} ns</text>`,
    );
  }
  kinds.forEach((k, i) => {
    const y = top + i * rowHeight;
    out.push(`<g class="kind" data-kind="${escapeXml(k.kind)}">`);
    out.push(`<text x="${labelWidth - 8}" y="${y + barHeight + 4}" text-anchor="end">${escapeXml(k.kind)}</text>`);
    out.push(
      `<rect class="js" x="${labelWidth}" y="${y}" width="${(x(k.nsPerPage) - labelWidth).toFixed(1)}" height="${barHeight}" fill="#3b6fb6"><title>JavaScript ${formatNumber(k.nsPerPage)} ns/page</title></rect>`,
    );
    out.push(
      `<text x="${(x(k.nsPerPage) + 4).toFixed(1)}" y="${y + barHeight - 2}" fill="#3b6fb6">${formatNumber(k.nsPerPage)}</text>`,
    );
    out.push(
      `<rect class="native" x="${labelWidth}" y="${y + barHeight}" width="${(x(k.nativeNsPerPage) - labelWidth).toFixed(1)}" height="${barHeight}" fill="#e08a2c"><title>C ${formatNumber(k.nativeNsPerPage)} ns/page</title></rect>`,
    );
    out.push(
      `<text x="${(x(k.nativeNsPerPage) + 4).toFixed(1)}" y="${y + 2 * barHeight - 2}" fill="#b06010">${formatNumber(k.nativeNsPerPage)} (×${k.ratio.toFixed(2)})</text>`,
    );
    out.push(`</g>`);
  });
  const legendY = axisBottom + 34;
  out.push(...chartLegend(labelWidth, legendY, 'JavaScript loop (ns/page)', 'same loop in C (ns/page, ×JS/C)'));
  if (report.skipped.length > 0) {
    out.push(`<text x="10" y="${legendY + 22}" fill="#555">Skipped:</text>`);
    report.skipped.forEach((s, i) => {
      out.push(
        `<text class="skipped" x="10" y="${legendY + 22 + 16 * (i + 1)}" fill="#555">${escapeXml(`${s.kind}: ${s.reason}`)}</text>`,
      );
    });
  }
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}

/**
 * `mman bench scale` as a standalone SVG document: pages per second for each kind, mode and
 * task count, JavaScript beside C, on a linear scale from 0.
 */
export function scaleChart(report: ScaleReport): string {
  const rows = report.results;
  const labelWidth = 230;
  const plotWidth = 560;
  const barHeight = 12;
  const rowHeight = 2 * barHeight + 10;
  const top = 60;
  const width = labelWidth + plotWidth + 150;
  const height = top + Math.max(1, rows.length) * rowHeight + 50;
  const most = Math.max(1, ...rows.flatMap((r) => [r.pagesPerSecond, r.nativePagesPerSecond]));
  const w = (rate: number): string => ((rate / most) * plotWidth).toFixed(1);
  const out = chartHead(
    width,
    height,
    `Page faults per second: map ${formatSize(report.taskBytes)}, touch, unmap (will-it-scale page_fault1/2/3)`,
    `${report.seconds} s a run; ${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}`,
  );
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const label = `${r.kind}, ${r.tasks} ${r.mode === 'threads' ? 'thread' : 'process'}${r.tasks > 1 ? (r.mode === 'threads' ? 's' : 'es') : ''}`;
    out.push(`<g class="row" data-kind="${escapeXml(r.kind)}" data-mode="${r.mode}" data-tasks="${r.tasks}">`);
    out.push(`<text x="${labelWidth - 8}" y="${y + barHeight + 4}" text-anchor="end">${escapeXml(label)}</text>`);
    out.push(
      `<rect class="js" x="${labelWidth}" y="${y}" width="${w(r.pagesPerSecond)}" height="${barHeight}" fill="#3b6fb6"><title>JavaScript ${formatNumber(r.pagesPerSecond)} pages/s</title></rect>`,
    );
    out.push(
      `<text x="${(labelWidth + Number(w(r.pagesPerSecond)) + 4).toFixed(1)}" y="${y + barHeight - 2}" fill="#3b6fb6">${formatNumber(r.pagesPerSecond)}</text>`,
    );
    out.push(
      `<rect class="native" x="${labelWidth}" y="${y + barHeight}" width="${w(r.nativePagesPerSecond)}" height="${barHeight}" fill="#e08a2c"><title>C ${formatNumber(r.nativePagesPerSecond)} pages/s</title></rect>`,
    );
    out.push(
      `<text x="${(labelWidth + Number(w(r.nativePagesPerSecond)) + 4).toFixed(1)}" y="${y + 2 * barHeight - 2}" fill="#b06010">${formatNumber(r.nativePagesPerSecond)} (×${r.ratio.toFixed(2)})</text>`,
    );
    out.push(`</g>`);
  });
  const legendY = top + rows.length * rowHeight + 30;
  out.push(...chartLegend(labelWidth, legendY, 'JavaScript (pages/s)', 'same loops in C (pages/s, ×JS/C)'));
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
