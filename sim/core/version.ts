import { readFileSync } from 'node:fs';
import type { ToolInfo } from './result.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The version of the JSON documents the commands print (`schema_version`):
 * raised when a key is renamed or its meaning changes, so scripts can check
 * what they read. 2: every key snake_case (the selector spec's too).
 */
export const SCHEMA_VERSION = 2;

/** Who wrote a result: the `tool` of every JSON document. */
export const TOOL: ToolInfo = { name: 'clusterip-sim', version: VERSION };
