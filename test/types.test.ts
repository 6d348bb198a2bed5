// The package's own declarations (lib/*.d.ts, as shipped) under `tsc --strict`: a file that
// uses every export compiles, and what the types must refuse is refused (@ts-expect-error).
// They are the API reference, so every export and every member of it has a doc comment.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as ts from 'typescript';

test('every export, used as a user would, compiles under tsc --strict against lib/index.d.ts', () => {
  const root = join(__dirname, '..');
  const tsc = spawnSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '--strict',
      '--noEmit',
      '--target',
      'es2022',
      '--module',
      'commonjs',
      '--lib',
      'es2022,esnext.disposable',
      '--types',
      'node',
      '--skipLibCheck',
      'false',
      join(root, 'test', 'types', 'every-export.ts'),
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  );
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.status).toBe(0);
});

test('the shipped declarations document every export and every public member, option and enum value', () => {
  const root = join(__dirname, '..');
  const index = join(root, 'lib', 'index.d.ts');
  const program = ts.createProgram([index], { strict: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const doc = (symbol: ts.Symbol) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  const undocumented: string[] = [];
  let seen = 0;
  for (const exported of checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(index)!)!)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    seen++;
    if (!doc(symbol)) undocumented.push(exported.name);
    const members: ts.Symbol[] = [];
    symbol.members?.forEach((member) => members.push(member));
    if (symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Enum)) symbol.exports?.forEach((m) => members.push(m));
    for (const member of members) {
      if (['__constructor', 'prototype', '#private'].includes(member.name) || member.name.startsWith('__@')) continue;
      const declaration = member.declarations?.[0];
      if (declaration && ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Private) continue;
      seen++;
      if (!doc(member)) undocumented.push(`${exported.name}.${member.name}`);
    }
  }
  expect(seen).toBeGreaterThan(250);
  expect(undocumented).toEqual([]);
});
