// `mman bench tlb`: random reads over a resident region, 4 KiB pages against huge pages.
import { command, countOption, sizeOption } from '../command';
import { runTlbBench, type TlbReport } from '../measure/tlb';
import { formatSize } from '../util/size';
import { formatNumber, formatTable } from '../util/table';

// ns per random read by page size, JavaScript beside C.
function tlbTable(report: TlbReport): string {
  const table = formatTable(
    [
      { heading: 'pages' },
      { heading: 'ns/read', numeric: true },
      { heading: 'C ns/read', numeric: true },
      { heading: 'JS/C', numeric: true },
      { heading: 'huge', numeric: true },
    ],
    report.results.map((r) => [
      r.kind,
      formatNumber(r.nsPerRead),
      formatNumber(r.nativeNsPerRead),
      (r.nsPerRead / r.nativeNsPerRead).toFixed(2),
      `${Math.round(r.hugeShare * 100)}%`,
    ]),
  );
  const skipped = report.skipped.map((s) => `${s.kind}: skipped, ${s.reason}`);
  return [
    `${report.reads} random 4-byte reads over a resident ${formatSize(report.size)} region, median of ${report.repeat}; ` +
      `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, THP ${report.machine.thp}`,
    '',
    table,
    ...(skipped.length > 0 ? ['', ...skipped] : []),
  ].join('\n');
}

export const tlb = command({
  name: 'bench tlb',
  usage: [
    'mman bench tlb [--size 1G] [--reads 4000000] [--repeat 5] [--json]',
    'Random 4-byte reads over a resident region: 4 KiB pages against transparent and hugetlb huge pages.',
  ],
  options: {
    size: { type: 'string' },
    reads: { type: 'string' },
    repeat: { type: 'string' },
  },
  run: (values, _positionals, onProgress) =>
    runTlbBench({
      size: sizeOption(values.size, 2 ** 30, 'size'),
      reads: countOption(values.reads, 4_000_000, 'reads'),
      repeat: countOption(values.repeat, 5, 'repeat'),
      onProgress,
    }),
  table: tlbTable,
});
