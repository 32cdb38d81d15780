// A receiver for webhook-signed.yaml that verifies every request with the official Standard
// Webhooks library (https://github.com/standard-webhooks/standard-webhooks):
//   npm install standardwebhooks
//   CUSTOMERS_WEBHOOK_SECRET=whsec_... PORT=8080 node webhook-receiver.mjs
// It answers 204 to a request whose signature verifies (and prints it), 401 to any other.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const webhook = new Webhook(process.env.CUSTOMERS_WEBHOOK_SECRET);
const seen = new Set(); // webhook-ids already applied: a retry repeats its id (keep these in your store)

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    let record;
    try {
      // Checks webhook-signature against webhook-id, webhook-timestamp (at most 5 minutes
      // off) and the exact body; returns the parsed body.
      record = webhook.verify(body, req.headers);
    } catch (err) {
      console.log(`refused webhook-id=${req.headers['webhook-id']} reason=${err.message}`);
      res.writeHead(401).end();
      return;
    }
    const id = req.headers['webhook-id'];
    if (!seen.has(id)) {
      seen.add(id);
      // record.value is the record's JSON; null for a tombstone (the key was deleted).
      console.log(`verified webhook-id=${id} key=${record.key} value=${JSON.stringify(record.value)}`);
    }
    res.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
