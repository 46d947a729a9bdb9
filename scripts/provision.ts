/**
 * `npm run provision`: resolves (building when needed) the Temporal CLI, the time-skipping test server and
 * nats-server, and Chromium for the browser tests.
 */
import { resolveChromium, resolveNatsServer, resolveTemporalCli, resolveTestServer } from '../stack/binaries.js';

const log = (message: string) => console.log(message);
const [cli, testServer, nats] = await Promise.all([
  resolveTemporalCli({ log }),
  resolveTestServer({ log }),
  resolveNatsServer({ log }),
]);
console.log(`Temporal CLI:         ${cli.path ?? 'SDK download'} (${cli.source})`);
console.log(`Time-skipping server: ${testServer.path ?? 'SDK download'} (${testServer.source})`);
console.log(`nats-server:          ${nats.path} (${nats.source})`);
console.log(`Chromium (browser tests): ${await resolveChromium({ log })}`);
