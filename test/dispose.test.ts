// `using` on each supported Node: Node 20 and 22 define Symbol.dispose as
// Symbol.for('nodejs.dispose') in the main realm only; Node 24's V8 has its own Symbol.dispose
// in every realm and runs `using` natively.
import { mapAnonymous, PAGE_SIZE, SharedMemory } from '../src';
import { runFixture } from './helpers';

const nativeUsing = (() => {
  try {
    new Function('{ using resource = null; }');
    return true;
  } catch {
    return false;
  }
})();

test('`using` (compiled by TypeScript) unmaps a Mapping and closes a SharedMemory in this realm', () => {
  let mapping: { closed: boolean } | undefined;
  let shared: { closed: boolean } | undefined;
  {
    using m = mapAnonymous(PAGE_SIZE);
    using shm = SharedMemory.create(PAGE_SIZE);
    mapping = m;
    shared = shm;
    expect(m.closed).toBe(false);
  }
  expect(mapping?.closed).toBe(true);
  expect(shared?.closed).toBe(true);
});

test('in a plain Node process, Symbol.dispose unmaps; Node 24+ runs `using` natively', () => {
  const child = runFixture('dispose-child.js', 'dispose', [String(nativeUsing)]);
  expect(child.stderr).toBe('');
  const report = JSON.parse(child.stdout);
  expect(report.closed).toBe(true);
  expect(report.native).toBe(nativeUsing ? true : null);
  // Node 20 and 22 polyfill the symbol; Node 24's is V8's own.
  expect(report.registered).toBe(!nativeUsing);
});
