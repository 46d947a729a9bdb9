/**
 * `npm run provision`: resolves (building when needed) the Temporal CLI, the time-skipping test server,
 * nats-server, the production Temporal server with its SQL tool and the release's schema files (the
 * production-topology test), and Chromium for the browser tests.
 */
import {
  resolveChromium,
  resolveNatsServer,
  resolveTemporalCli,
  resolveTemporalServer,
  resolveTemporalServerModule,
  resolveTemporalSqlTool,
  resolveTestServer,
} from '../stack/binaries.js';

const log = (message: string) => console.log(message);
const [cli, testServer, nats, server, sqlTool, serverModule] = await Promise.all([
  resolveTemporalCli({ log }),
  resolveTestServer({ log }),
  resolveNatsServer({ log }),
  resolveTemporalServer({ log }),
  resolveTemporalSqlTool({ log }),
  resolveTemporalServerModule({ log }),
]);
console.log(`Temporal CLI:         ${cli.path ?? 'SDK download'} (${cli.source})`);
console.log(`Time-skipping server: ${testServer.path ?? 'SDK download'} (${testServer.source})`);
console.log(`nats-server:          ${nats.path} (${nats.source})`);
console.log(`Temporal server:      ${server.path} (${server.source})`);
console.log(`Temporal SQL tool:    ${sqlTool.path} (${sqlTool.source})`);
console.log(`Temporal schemas:     ${serverModule.dir}`);
console.log(`Chromium (browser tests): ${await resolveChromium({ log })}`);
