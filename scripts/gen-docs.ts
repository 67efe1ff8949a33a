// Regenerates what is derived from code (npm run docs): the docs, and the config validator.
import { writeFileSync } from 'node:fs';
import { configMarkdown } from '../src/core/config-schema.js';
import { asyncApiJson } from '../src/protocol/asyncapi.js';
import { CONFIG_VALIDATOR_FILE, configValidatorSource } from './lib/config-validator-source.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configMarkdown());
writeFileSync(new URL('../docs/asyncapi.json', import.meta.url), asyncApiJson());
writeFileSync(CONFIG_VALIDATOR_FILE, configValidatorSource());
