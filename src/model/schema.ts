// Validation of a JSON object against a field schema (an object class's fields, a route's body):
// unknown fields and wrong types are refusals that name the field.
import { Invalid } from './errors.js';

export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'string[]' | 'object' | 'any';

export interface FieldSpec {
  type: FieldType;
  summary: string;
  required?: boolean;
  enum?: readonly string[];
  /** Accepted on write, never returned (e.g. a password). */
  writeOnly?: boolean;
  /** Returned, never accepted on write (computed by keel). */
  readOnly?: boolean;
  /** Where the value comes from, for `/…/meta`. */
  source?: string;
}

/**
 * Longest text a string field (or an item of a string list) accepts. Values end up in kernel
 * command lines (at most 4,096 bytes) and templates; names, which are index keys, have a lower
 * limit (MAX_NAME_LENGTH in object-store.ts).
 */
export const MAX_STRING_LENGTH = 4096;

export type Schema = Readonly<Record<string, FieldSpec>>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Check `body` against `schema`. `requireAll` enforces required fields (create, PUT); a PATCH
 * passes false. Returns the body as a record.
 */
export function validateBody(schema: Schema, body: unknown, requireAll: boolean): Record<string, unknown> {
  if (!isPlainObject(body)) throw new Invalid('Request body must be a JSON object');
  const unknown = Object.keys(body).filter((key) => !Object.hasOwn(schema, key));
  if (unknown.length > 0) throw new Invalid(`Unhandled parameter(s): ${unknown.join(', ')}`);
  // A field keel computes is no typo: say where its value comes from, so the caller knows what to change instead.
  const computed = Object.keys(body).filter((key) => schema[key]!.readOnly);
  if (computed.length > 0) throw new Invalid(`Read-only field(s), set by keel: ${computed.map((key) => `${key} (${schema[key]!.summary})`).join('; ')}`);
  for (const [key, spec] of Object.entries(schema)) {
    const value = body[key];
    if (value === undefined || value === null) {
      if (requireAll && spec.required) throw new Invalid(`Missing required field '${key}'`);
      continue;
    }
    const problem = typeProblem(spec, value);
    if (problem) throw new Invalid(`Field '${key}' ${problem}`);
  }
  return body;
}

function typeProblem(spec: FieldSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.enum && !spec.enum.includes(value)) return `must be one of ${spec.enum.join(', ')}`;
      return value.length > MAX_STRING_LENGTH ? `must have at most ${MAX_STRING_LENGTH} characters` : undefined;
    case 'integer':
      return Number.isSafeInteger(value) ? undefined : 'must be an integer';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'must be a number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'string[]':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return 'must be a list of strings';
      return value.some((item) => item.length > MAX_STRING_LENGTH) ? `must have items of at most ${MAX_STRING_LENGTH} characters` : undefined;
    case 'object':
      return isPlainObject(value) ? undefined : 'must be a JSON object';
    case 'any':
      return undefined;
  }
}
