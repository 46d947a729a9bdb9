/**
 * Building blocks of the TypeBox schemas in the capabilities' `definitions.ts`. The schemas live with the workflow
 * definitions so that workflows, activities and the API derive their types from the one schema the API validates
 * with (`type X = Static<typeof X>`); TypeBox only builds plain JSON Schema objects, so it is safe in the bundle.
 */
import { Type, type TSchema } from '@sinclair/typebox';

/** Pattern of the business identifiers that go into workflow ids (tenant, run, approval, policy, SBOM). */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';

/** A business identifier (see `ID_PATTERN`), documented by `description`. */
export const Id = (description: string) => Type.String({ pattern: ID_PATTERN, description });

/** `schema` or `null`. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
