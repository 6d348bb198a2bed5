// `mman bench pressure`: random reads of a file larger than a memory cgroup's limit.
import { command, countOption, sizeOption } from '../command';
import { runPressureBench, type PressureReport } from '../measure/pressure';
import { formatSize } from '../util/size';
import { formatNumber, formatTable } from '../util/table';

// One row per limit and method.
function pressureTable(report: PressureReport): string {
  if (report.skipped !== undefined) return `pressure: skipped, ${report.skipped}`;
  const rows: string[][] = [];
  for (const point of report.points) {
    if (point.failed !== undefined) {
      rows.push([formatSize(point.limit), point.ratio.toFixed(2), point.failed, '', '', '']);
      continue;
    }
    for (const r of point.results)
      rows.push([
        formatSize(point.limit),
        point.ratio.toFixed(2),
        r.method,
        formatNumber(r.nsPerRead),
        String(r.reads),
        String(r.majorFaults),
      ]);
  }
  const table = formatTable(
    [
      { heading: 'limit' },
      { heading: 'file/limit', numeric: true },
      { heading: 'method' },
      { heading: 'ns/read', numeric: true },
      { heading: 'reads', numeric: true },
      { heading: 'major faults', numeric: true },
    ],
    rows,
  );
  return [
    `${report.reads} random 4-byte reads of a ${formatSize(report.size)} file dropped from the page cache first, ` +
      `in a child held in a cgroup ${report.cgroup} memory limit; ${report.machine.cpus} CPUs, Linux ${report.machine.kernel}`,
    '',
    table,
  ].join('\n');
}

export const pressure = command({
  name: 'bench pressure',
  usage: [
    'mman bench pressure [--size 256M] [--limit 64M] [--reads 50000] [--budget 10] [--json] [--dir DIR]',
    "Random reads of a file larger than a memory cgroup's limit: mmap vs fs.readSync, major faults.",
  ],
  options: {
    size: { type: 'string' },
    limit: { type: 'string' },
    reads: { type: 'string' },
    budget: { type: 'string' },
    dir: { type: 'string' },
  },
  run: (values, _positionals, onProgress) =>
    runPressureBench({
      size: sizeOption(values.size, 256 * 2 ** 20, 'size'),
      limit: sizeOption(values.limit, 64 * 2 ** 20, 'limit'),
      reads: countOption(values.reads, 50_000, 'reads'),
      budgetMs: countOption(values.budget, 10, 'budget') * 1000,
      dir: values.dir,
      onProgress,
    }),
  table: pressureTable,
});
