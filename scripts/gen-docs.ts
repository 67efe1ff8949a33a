// Regenerates the docs that are derived from code (npm run docs).
import { writeFileSync } from 'node:fs';
import { configMarkdown } from '../src/core/config.js';
import { asyncApiJson } from '../src/protocol/asyncapi.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configMarkdown());
writeFileSync(new URL('../docs/asyncapi.json', import.meta.url), asyncApiJson());
