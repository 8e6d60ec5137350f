// The one-way layers of src/ (docs/architecture.md), checked by `npm run lint` and so by `npm test`.
// Every import must match one of the `allowed` rules below; anything else, and any import cycle
// between files, is an error. "base" is the files directly in src/ (config, log, version, native, durable-file);
// "top" is the entry points and the composition root (main, cli and the CLI's commands in cli/,
// serve, bootstrap).
const BASE = '^src/(config|log|version|native|durable-file)[.]ts$';
const TOP = '^src/((main|cli|serve|bootstrap)[.]ts$|cli/)';
/** A folder of src/ and what it may import besides itself and base, lowest layer first. */
const LAYERS = {
  store: [],
  model: ['store'],
  http: [],
  boot: ['store', 'model', 'http'],
  power: ['store', 'model'],
  git: ['store', 'model'],
  ssh: ['store', 'model'],
  cluster: ['store'],
  net: ['store', 'model', 'boot'],
  build: ['store', 'model'],
  clientpkgs: [],
  api: ['store', 'model', 'http', 'boot', 'power', 'net', 'git', 'ssh', 'clientpkgs', 'build'],
};

const folders = (names) => `^src/(${names.join('|')})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-file-cycle',
      severity: 'error',
      comment: 'Files must not import each other in a circle (type imports count).',
      from: {},
      to: { circular: true },
    },
  ],
  allowed: [
    ...Object.entries(LAYERS).map(([folder, below]) => ({
      comment: `${folder} imports only itself, ${below.length ? below.join(', ') + ' and ' : ''}base`,
      from: { path: `^src/${folder}/` },
      to: { path: [`^src/${folder}/`, ...(below.length ? [folders(below)] : []), BASE] },
    })),
    { comment: 'base imports only base', from: { path: BASE }, to: { path: BASE } },
    { comment: 'the entry points and the composition root import anything in src/', from: { path: TOP }, to: { path: '^src/' } },
  ],
  allowedSeverity: 'error',
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    reporterOptions: {
      archi: { collapsePattern: '^src/[^/]+/' },
    },
  },
};
