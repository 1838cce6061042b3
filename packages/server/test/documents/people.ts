/** Seed documents: nested objects, arrays of values and of sub-documents, missing fields, mixed types. */
import type { Doc } from './sqlite-fixture.ts';

export const PEOPLE: Doc[] = [
  {
    _id: 'u1',
    name: 'Alice',
    age: 34,
    email: 'alice@example.com',
    tags: ['admin', 'dev'],
    address: { city: 'Paris', zip: '75001', geo: { lat: 48.85 } },
    scores: [90, 72],
    active: true,
  },
  {
    _id: 'u2',
    name: 'bob',
    age: '34',
    tags: 'dev',
    address: [{ city: 'Rome' }, { city: 'Oslo', zip: '0150' }],
    scores: [55],
    active: false,
  },
  {
    _id: 'u3',
    name: null,
    age: 27.5,
    tags: [],
    address: { city: 'Lyon' },
    active: true,
    meta: { level: 3 },
    motto: 'carpe diem\n',
  },
  {
    _id: 'u4',
    name: 'Dora',
    age: 61,
    tags: [['nested'], 'ops'],
    address: 'unknown',
    scores: [],
    manager: { name: 'Alice' },
  },
  {
    _id: 'u5',
    name: 'Éloïse',
    age: 19,
    email: "o'hara@example.com",
    tags: ['dev', 'ops'],
    address: { city: 'Paris' },
    scores: [100, 100, 40],
  },
  { _id: 'u6' },
  {
    _id: 'u7',
    name: 'alice',
    age: 0,
    tags: ['ADMIN'],
    active: 'yes',
    orders: [
      { sku: 'A1', qty: 2 },
      { sku: 'B2', qty: 5 },
    ],
  },
  {
    _id: 'u8',
    name: '100%_sure*',
    age: -3,
    orders: [{ sku: 'A1', qty: 1 }, { sku: 'C3' }],
    note: 'line1\nline2',
  },
];

export const ALL_IDS = PEOPLE.map((doc) => doc._id as string);

/** Every id except the given ones, in seed order. */
export function except(...ids: string[]): string[] {
  return ALL_IDS.filter((id) => !ids.includes(id));
}
