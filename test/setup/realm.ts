// Jest runs each test file in a vm realm. Node 20 defines Symbol.dispose only in the main
// realm (as Symbol.for('nodejs.dispose')); give the test realm the same symbol for `using`.
const symbols = Symbol as unknown as { dispose?: symbol; asyncDispose?: symbol };
symbols.dispose ??= Symbol.for('nodejs.dispose');
symbols.asyncDispose ??= Symbol.for('nodejs.asyncDispose');
