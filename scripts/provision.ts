/**
 * `npm run provision`: resolves (building when needed) the Temporal CLI, the time-skipping test server,
 * nats-server, the production Temporal server with its SQL tool and the release's schema files (the
 * production-topology test), and Chromium for the browser tests.
 */
import { provisionAll } from '../stack/binaries.js';

const { cli, testServer, nats, server, sqlTool, serverModule, chromium } = await provisionAll({
  log: (message) => console.log(message),
});
console.log(`Temporal CLI:         ${cli.path ?? 'SDK download'} (${cli.source})`);
console.log(`Time-skipping server: ${testServer.path ?? 'SDK download'} (${testServer.source})`);
console.log(`nats-server:          ${nats.path} (${nats.source})`);
console.log(`Temporal server:      ${server.path} (${server.source})`);
console.log(`Temporal SQL tool:    ${sqlTool.path} (${sqlTool.source})`);
console.log(`Temporal schemas:     ${serverModule.dir}`);
console.log(`Chromium (browser tests): ${chromium}`);
