/** `npm run provision`: resolves (building when needed) the Temporal CLI and the time-skipping test server. */
import { resolveChromium, resolveTemporalCli, resolveTestServer } from '../stack/binaries.js';

const log = (message: string) => console.log(message);
const [cli, testServer] = await Promise.all([resolveTemporalCli({ log }), resolveTestServer({ log })]);
console.log(`Temporal CLI:         ${cli.path ?? 'SDK download'} (${cli.source})`);
console.log(`Time-skipping server: ${testServer.path ?? 'SDK download'} (${testServer.source})`);
console.log(`Chromium (browser tests): ${await resolveChromium({ log })}`);
