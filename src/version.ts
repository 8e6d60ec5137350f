// Replaced at bundle time by esbuild's `define`; the fallback serves tsx runs from source.
declare const KEEL_VERSION: string | undefined;
export const VERSION: string = typeof KEEL_VERSION === 'string' ? KEEL_VERSION : '0.1.0-dev';
