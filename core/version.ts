/** Version of this product, read from package.json once. */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The product version (package.json). */
export const VERSION: string = pkg.version;
