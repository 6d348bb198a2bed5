// `mman bench serve`: one file over HTTP from a mapping, a cached Buffer and createReadStream,
// beside a C server with sendfile(2).
import { command, countOption, UsageError } from '../command';
import { runServeBench, type ServeReport, type ServeResult } from '../measure/serve';
import { formatSize, parseSize } from '../util/size';
import { formatNumber, formatTable } from '../util/table';

// `field` of `r` divided by the same size's `way` row's, or '' when there is no such row.
function against(report: ServeReport, r: ServeResult, way: ServeResult['way'], field: keyof ServeResult): string {
  const base = report.results.find((b) => b.size === r.size && b.way === way);
  return base === undefined ? '' : ((r[field] as number) / (base[field] as number)).toFixed(2);
}

// One row per size and way: rate and CPU per request, each against the Buffer and the stream.
function serveTable(report: ServeReport): string {
  const table = formatTable(
    [
      { heading: 'size' },
      { heading: 'way' },
      { heading: 'req/s', numeric: true },
      { heading: '/buffer', numeric: true },
      { heading: '/stream', numeric: true },
      { heading: 'CPU us/req', numeric: true },
      { heading: '/buffer', numeric: true },
      { heading: '/stream', numeric: true },
      { heading: 'busy', numeric: true },
      { heading: 'client', numeric: true },
      { heading: 'RSS', numeric: true },
      { heading: 'anon', numeric: true },
      { heading: 'verified', numeric: true },
      { heading: 'bad', numeric: true },
    ],
    report.results.map((r) => [
      formatSize(r.size),
      r.way,
      formatNumber(r.requestsPerSecond),
      against(report, r, 'buffer', 'requestsPerSecond'),
      against(report, r, 'stream', 'requestsPerSecond'),
      formatNumber(r.cpuMicrosPerRequest),
      against(report, r, 'buffer', 'cpuMicrosPerRequest'),
      against(report, r, 'stream', 'cpuMicrosPerRequest'),
      `${Math.round(r.busy * 100)}%`,
      `${Math.round(r.clientBusy * 100)}%`,
      formatSize(r.rss),
      formatSize(r.rssAnon),
      String(r.verified),
      String(r.bad),
    ]),
  );
  const m = report.machine;
  const failures = report.results
    .filter((r) => r.bad > 0)
    .map((r) => `${formatSize(r.size)} ${r.way}: ${r.bad} bad responses: ${r.failures.join('; ')}`);
  return [
    `One file over HTTP to ${report.connections} keep-alive connections of a client process, ${report.seconds} s per ` +
      `size and way; ${m.cpus} CPUs, ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}, load ${m.loadAverage.toFixed(2)}`,
    '',
    table,
    '',
    '/buffer, /stream: the figure divided by the same size served from a Buffer read once, and by createReadStream. ' +
      'CPU: the server process, user + system; busy: its CPU time / wall time; client: the same for the client.',
    ...report.skipped.map((s) => `${s.way}: skipped, ${s.reason}`),
    ...failures,
  ].join('\n');
}

export const serve = command({
  name: 'bench serve',
  usage: [
    'mman bench serve [--sizes 4K,1M,64M] [--seconds 3] [--warmup 1] [--connections 4] [--pipeline 1] [--quick] [--json] [--dir DIR]',
    'One file over HTTP from a mapping, a cached Buffer and createReadStream, and from C with sendfile(2).',
  ],
  options: {
    sizes: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    pipeline: { type: 'string' },
    quick: { type: 'boolean' },
    dir: { type: 'string' },
  },
  run(values, _positionals, onProgress) {
    const seconds = Number(values.seconds ?? (values.quick ? 0.5 : 3));
    if (!(seconds > 0 && seconds <= 3600))
      throw new UsageError(`--seconds must be in (0, 3600], not '${values.seconds}'`);
    const warmup = Number(values.warmup ?? (values.quick ? 0.2 : 1));
    if (!(warmup >= 0 && warmup <= 3600)) throw new UsageError(`--warmup must be in [0, 3600], not '${values.warmup}'`);
    const sizes = (values.sizes ?? (values.quick ? '4K,256K' : '4K,1M,64M')).split(',').map((text) => {
      try {
        return parseSize(text, 'sizes');
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    });
    return runServeBench({
      sizes,
      seconds,
      warmup,
      connections: countOption(values.connections, 4, 'connections'),
      pipeline: countOption(values.pipeline, 1, 'pipeline'),
      dir: values.dir,
      onProgress,
    });
  },
  table: serveTable,
  // A way that served a wrong byte fails the command, whatever its speed.
  after: (report) => (report.results.some((r) => r.bad > 0 || r.requests === 0) ? 1 : 0),
});
