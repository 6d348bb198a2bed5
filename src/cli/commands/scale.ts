// `mman bench scale`: will-it-scale's page_fault1/2/3 in worker threads and in processes, beside C.
import { command, checkKinds, countOption, UsageError } from '../command';
import { runScaleBench, SCALE_KINDS, type ScaleKind, type ScaleMode, type ScaleReport } from '../measure/scale';
import { formatSize } from '../util/size';
import { scaleChart } from '../util/svg';
import { formatNumber, formatTable } from '../util/table';

// Pages per second, total and per task, and the scaling.
function scaleTable(report: ScaleReport): string {
  const table = formatTable(
    [
      { heading: 'kind' },
      { heading: 'mode' },
      { heading: 'tasks', numeric: true },
      { heading: 'pages/s', numeric: true },
      { heading: 'per task', numeric: true },
      { heading: 'scaling', numeric: true },
      { heading: 'C pages/s', numeric: true },
      { heading: 'C scaling', numeric: true },
      { heading: 'JS/C', numeric: true },
    ],
    report.results.map((r) => [
      r.kind,
      r.mode,
      String(r.tasks),
      formatNumber(r.pagesPerSecond),
      formatNumber(r.perTask),
      Number.isNaN(r.scaling) ? '' : r.scaling.toFixed(2),
      formatNumber(r.nativePagesPerSecond),
      Number.isNaN(r.nativeScaling) ? '' : r.nativeScaling.toFixed(2),
      r.ratio.toFixed(2),
    ]),
  );
  return [
    `Each task maps ${formatSize(report.taskBytes)}, writes one byte per page, unmaps, for ${report.seconds} s; ` +
      `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}`,
    ...(report.oversubscribed
      ? [`More tasks than CPUs (${report.machine.cpus}) in some runs: they share CPUs, and their scaling says so.`]
      : []),
    '',
    table,
  ].join('\n');
}

export const scale = command({
  name: 'bench scale',
  usage: [
    'mman bench scale [--kinds anon,file-private,file-shared] [--tasks 1,2] [--mode threads|processes|both] [--seconds 5] [--json] [--svg FILE] [--dir DIR]',
    "will-it-scale's page_fault1/2/3 in worker threads and in processes, JavaScript beside C.",
  ],
  options: {
    kinds: { type: 'string' },
    tasks: { type: 'string' },
    mode: { type: 'string' },
    seconds: { type: 'string' },
    dir: { type: 'string' },
  },
  run(values, _positionals, onProgress) {
    const kinds = (values.kinds ?? SCALE_KINDS.join(',')).split(',').map((k) => k.trim()) as ScaleKind[];
    checkKinds(kinds, SCALE_KINDS);
    const tasks = (values.tasks ?? '1,2').split(',').map((t) => countOption(t.trim(), 1, 'tasks'));
    const mode = values.mode ?? 'both';
    if (!['threads', 'processes', 'both'].includes(mode))
      throw new UsageError(`--mode is threads, processes or both, not '${mode}'`);
    const modes: ScaleMode[] = mode === 'both' ? ['threads', 'processes'] : [mode as ScaleMode];
    const seconds = Number(values.seconds ?? 5);
    if (!(seconds > 0 && seconds <= 3600))
      throw new UsageError(`--seconds must be in (0, 3600], not '${values.seconds}'`);
    return runScaleBench({ kinds, tasks, modes, seconds, dir: values.dir, onProgress });
  },
  table: scaleTable,
  svg: scaleChart,
});
