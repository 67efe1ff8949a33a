import t from 'tap';
import { parseBatchCsv } from '../../src/cli/batch.js';

const usage = (m: string): Error => Object.assign(new Error(m), { code: 'USAGE' });

t.test('CSV: header names the columns; empty cells are left out; quotes and a BOM are handled', async (t) => {
  const csv =
    '\uFEFFarbitraryId,insurerNumber,symbol,number,branch,birthdate,limitConsent\r\n' +
    'P1_1,06139992,テスト,12345,00,19800401,1\r\n' +
    '"P2,""x""",39010004,,7,,19500101,0\r\n\r\n';
  t.same(parseBatchCsv(csv, usage), [
    {
      arbitraryId: 'P1_1',
      insurerNumber: '06139992',
      symbol: 'テスト',
      number: '12345',
      branch: '00',
      birthdate: '19800401',
      limitConsent: true,
    },
    { arbitraryId: 'P2,"x"', insurerNumber: '39010004', number: '7', birthdate: '19500101', limitConsent: false },
  ]);
  // the columns may come in any order
  t.same(parseBatchCsv('birthdate,number,insurerNumber,arbitraryId\n19800401,1,06139992,A\n', usage), [
    { birthdate: '19800401', number: '1', insurerNumber: '06139992', arbitraryId: 'A' },
  ]);
});

t.test('CSV: problems are usage errors that say what to fix', async (t) => {
  t.throws(() => parseBatchCsv('', usage), { message: /empty/ });
  t.throws(() => parseBatchCsv('arbitraryId,insurerNumber,number,birthdate,name\n', usage), {
    message: /unknown CSV column "name"/,
  });
  t.throws(() => parseBatchCsv('insurerNumber,number,birthdate\n', usage), { message: /needs the column arbitraryId/ });
  t.throws(() => parseBatchCsv('arbitraryId,insurerNumber,number,birthdate\nA,06139992,1\n', usage), {
    message: /line 2 has 3 fields, the header 4/,
  });
});
