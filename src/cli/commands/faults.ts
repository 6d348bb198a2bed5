// `mman bench faults`: first-touch cost per page of each kind of mapping, JavaScript beside C.
import { command, checkKinds, countOption, sizeOption } from '../command';
import { FAULT_KINDS, runFaultBench, type FaultKind, type FaultReport } from '../measure/faults';
import { formatSize } from '../util/size';
import { faultChart } from '../util/svg';
import { formatNumber, formatTable } from '../util/table';

// The measured kinds first, then why the others were skipped.
function faultTable(report: FaultReport): string {
  const table = formatTable(
    [
      { heading: 'kind' },
      { heading: 'ns/page', numeric: true },
      { heading: 'min', numeric: true },
      { heading: 'max', numeric: true },
      { heading: 'C ns/page', numeric: true },
      { heading: 'JS/C', numeric: true },
      { heading: 'minor/page', numeric: true },
      { heading: 'major/page', numeric: true },
      { heading: 'resident', numeric: true },
      { heading: 'huge', numeric: true },
    ],
    report.kinds.map((k) => [
      k.kind,
      formatNumber(k.nsPerPage),
      formatNumber(k.nsMin),
      formatNumber(k.nsMax),
      formatNumber(k.nativeNsPerPage),
      k.ratio.toFixed(2),
      k.minorFaultsPerPage.toFixed(4),
      k.majorFaultsPerPage.toFixed(4),
      `${k.residentPages}/${k.pages}`,
      `${Math.round(k.hugeShare * 100)}%`,
    ]),
  );
  const head =
    `First touch of a ${formatSize(report.size)} mapping (${report.size / report.pageSize} pages of ${report.pageSize} B), median of ${report.repeat}; ` +
    `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}, THP ${report.machine.thp}, load ${report.machine.loadAverage.toFixed(2)}`;
  const skipped = report.skipped.map((s) => `${s.kind}: skipped, ${s.reason}`);
  return [head, '', table, ...(skipped.length > 0 ? ['', ...skipped] : [])].join('\n');
}

export const faults = command({
  name: 'bench faults',
  usage: [
    'mman bench faults [--size 256M] [--kinds a,b,...] [--repeat 7] [--json] [--svg FILE] [--dir DIR]',
    'First-touch cost per page of each kind of mapping, JavaScript beside the same loop in C.',
    `Kinds: ${FAULT_KINDS.join(', ')}`,
  ],
  options: {
    size: { type: 'string' },
    kinds: { type: 'string' },
    repeat: { type: 'string' },
    dir: { type: 'string' },
  },
  run(values, _positionals, onProgress) {
    let kinds: FaultKind[] | undefined;
    if (values.kinds !== undefined) {
      kinds = values.kinds
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '') as FaultKind[];
      checkKinds(kinds, FAULT_KINDS);
    }
    return runFaultBench({
      size: sizeOption(values.size, 256 * 2 ** 20, 'size'),
      repeat: countOption(values.repeat, 7, 'repeat'),
      kinds,
      dir: values.dir,
      onProgress,
    });
  },
  table: faultTable,
  svg: faultChart,
});
