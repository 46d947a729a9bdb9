/**
 * The impact index of the reference services, derived from the bundled sample SBOMs and their findings
 * (`samples/policy-engine/findings.json`, the data the reference Policy Engine evaluates): each SBOM is the SBOM of
 * one container image, and an advisory impacts every image whose SBOM carries a finding for it. Pure once loaded.
 */
import { createHash } from 'node:crypto';
import type { FindingsData, Sbom } from '../policy-engine/model.js';

/** One image of the index. */
export interface IndexedImage {
  /** `name:version` of the product the SBOM describes, e.g. `payments-api:3.8.2`. */
  imageId: string;
  /** A stable, made-up image digest (`sha256:` + hex): the sample data has none. */
  digest: string;
  sbomId: string;
}

/** An image an advisory impacts, as `impact-index.resolve` answers it. */
export type ImpactedImage = IndexedImage;

/** The index: which images an advisory impacts, and what a scan of an image finds. */
export interface ImpactIndex {
  /**
   * Images whose SBOM has a finding for `advisoryId`, in file order; with `packages` (purls, with or without
   * `@version`), only those where a listed package carries the finding. An unknown advisory impacts nothing.
   */
  resolve(advisoryId: string, packages?: readonly string[]): ImpactedImage[];
  /** Number of findings a scan of `imageId` reports (every finding of its SBOM); 0 for an image not in the index. */
  findingsOf(imageId: string): number;
  /** Every image, in file order. */
  images(): IndexedImage[];
}

/** The image id of an SBOM: `name:version` from its product line, else the SBOM id without its `sbom-` prefix. */
export function imageIdOf(sbom: Pick<Sbom, 'id' | 'product'>): string {
  const match = /^([a-z0-9][a-z0-9._-]*) ([0-9][A-Za-z0-9._-]*)/.exec(sbom.product);
  return match ? `${match[1]}:${match[2]}` : sbom.id.replace(/^sbom-/, '');
}

/** The made-up digest of the image of `sbomId`: deterministic, so every run and every test sees the same one. */
export function digestOf(sbomId: string): string {
  return `sha256:${createHash('sha256').update(`stellaops-sample-image:${sbomId}`).digest('hex')}`;
}

/** A component matches a package filter entry by purl (`pkg:npm/x`) or by purl and version (`pkg:npm/x@1.2.3`). */
function matchesPackage(component: { name: string; version: string }, packages: readonly string[]): boolean {
  return packages.some((p) => p === component.name || p === `${component.name}@${component.version}`);
}

/** Builds the index of `findings`. */
export function createImpactIndex(findings: FindingsData): ImpactIndex {
  const entries = findings.sboms.map((sbom) => ({
    sbom,
    image: { imageId: imageIdOf(sbom), digest: digestOf(sbom.id), sbomId: sbom.id },
    findings: sbom.components.reduce((n, component) => n + component.findings.length, 0),
  }));
  const byImage = new Map(entries.map((entry) => [entry.image.imageId, entry]));
  return {
    resolve(advisoryId, packages) {
      return entries
        .filter(({ sbom }) =>
          sbom.components.some(
            (component) =>
              (packages === undefined || matchesPackage(component, packages)) &&
              component.findings.some((finding) => finding.advisoryId === advisoryId),
          ),
        )
        .map(({ image }) => ({ ...image }));
    },
    findingsOf: (imageId) => byImage.get(imageId)?.findings ?? 0,
    images: () => entries.map(({ image }) => ({ ...image })),
  };
}
