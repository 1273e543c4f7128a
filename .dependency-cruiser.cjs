// The layer rules of docs/architecture.md as code: `npm run lint:layers` fails CI on an import that crosses them.
// domain <- ports <- app <- adapters (aws | sqlite) <- hosts <- entry points (functions, cli, bin); infra apart.
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });
module.exports = {
  forbidden: [
    forbid(
      'domain-is-pure',
      'The domain imports nothing but itself and zod: no SDK, no I/O, no Node built-ins.',
      { path: '^shared/domain/' },
      { pathNot: ['^shared/domain/', '^node_modules/zod/'] },
    ),
    forbid(
      'ports-know-the-domain',
      'Ports name domain types only.',
      { path: '^shared/ports[.]ts$' },
      { pathNot: ['^shared/domain/', '^shared/ports[.]ts$'] },
    ),
    forbid(
      'app-knows-ports-only',
      'Use cases know the domain and the ports, never an adapter, a host, infra or an entry point.',
      { path: '^shared/app/' },
      { path: ['^shared/(adapters|hosts|cli|sim|web)/', '^infra/', '^functions/', '^bin/', '^test/'] },
    ),
    forbid(
      'app-uses-no-sdk',
      'Use cases do not reach AWS or SQLite themselves.',
      { path: '^shared/app/' },
      { path: ['^node_modules/@aws-sdk/', '^node_modules/better-sqlite3/'] },
    ),
    forbid(
      'one-backend-never-leans-on-the-other',
      'The AWS adapters and the SQLite adapters do not import each other.',
      { path: '^shared/adapters/aws/' },
      { path: '^shared/adapters/sqlite/' },
    ),
    forbid(
      'sqlite-never-leans-on-aws',
      'The SQLite adapters do not import the AWS ones.',
      { path: '^shared/adapters/sqlite/' },
      { path: ['^shared/adapters/aws/', '^node_modules/@aws-sdk/'] },
    ),
    forbid(
      'adapters-below-hosts',
      'Adapters never import a host, the CLI, an entry point or infra.',
      { path: '^shared/adapters/' },
      { path: ['^shared/(hosts|cli|sim|web)/', '^infra/', '^functions/', '^bin/'] },
    ),
    forbid(
      'lambdas-are-aws-only',
      'A Lambda never imports the embedded host, the SQLite adapters or the CLI.',
      { path: '^functions/' },
      {
        path: [
          '^shared/hosts/',
          '^shared/adapters/sqlite/',
          '^shared/cli/',
          '^shared/sim/',
          '^node_modules/better-sqlite3/',
        ],
      },
    ),
    forbid(
      'emulator-is-the-aws-shape',
      'The AWS emulator host never uses the embedded backend.',
      { path: '^shared/hosts/aws-emulator/' },
      { path: ['^shared/adapters/sqlite/', '^shared/hosts/embedded/', '^node_modules/better-sqlite3/'] },
    ),
    forbid(
      'embedded-host-is-not-aws',
      'The embedded host never uses the AWS adapters or the SDK.',
      { path: '^shared/hosts/(embedded|mllp-bridge)/' },
      { path: ['^shared/adapters/aws/', '^shared/hosts/aws-emulator/', '^functions/', '^node_modules/@aws-sdk/'] },
    ),
    forbid(
      'runtime-never-imports-infra',
      'Nothing under shared/ or functions/ imports the CDK app (the emulator is handed the synthesized template).',
      { path: ['^shared/', '^functions/'] },
      { path: ['^infra/', '^node_modules/aws-cdk-lib/', '^node_modules/constructs/'] },
    ),
    forbid(
      'infra-reads-names-not-runtimes',
      'infra/ bundles the Lambdas by their entry files and reads the names the stack and the functions must agree on (env variables, table keys, metric names, routes, limits) from their one definition; it never imports a host, the SQLite adapters, the CLI or the board.',
      { path: '^infra/' },
      { path: ['^shared/(hosts|cli|sim|web)/', '^shared/adapters/sqlite/'] },
    ),
    forbid(
      'production-never-imports-tests',
      'Runtime code never imports test support.',
      { path: ['^shared/', '^functions/', '^infra/', '^bin/'] },
      { path: '^test/' },
    ),
  ],
  options: {
    // Packages are in the graph (the rules name @aws-sdk, better-sqlite3, aws-cdk-lib, zod), but not walked into.
    // Excluding them as well took them out of the graph, and every rule about a package passed whatever was imported.
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^cdk[.]out/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // A worktree whose node_modules links to another checkout's still resolves packages to node_modules/..., which
    // the rules name (without it, zod resolved to ../main/node_modules/zod and the domain rule failed).
    preserveSymlinks: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
