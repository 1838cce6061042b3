/** The client a RustyDBProvider hands down to its hooks. */
import { createContext } from 'react';
import type { RustyDBClient } from '../client.ts';

export const RustyDBContext = createContext<RustyDBClient | null>(null);
