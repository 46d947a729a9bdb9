/** Effects manifests of the tests, parsed as workers/main.ts parses its file. */
import { parseEffectsManifest, type EffectsManifest } from '../../activities/sagas/effects-manifest.js';

/**
 * Parses the manifest `text` of a test, read from `source`, whose `${REFERENCE_SERVICES_URL}` is
 * `referenceServicesUrl`. It names no secret: a secret file reads empty and no environment secret is set.
 */
export function parseTestManifest(
  text: string,
  referenceServicesUrl: string,
  source = 'effects.yaml',
): EffectsManifest {
  return parseEffectsManifest(text, {
    source,
    referenceServicesUrl,
    readSecretFile: () => '',
    environmentSecret: () => undefined,
  });
}
