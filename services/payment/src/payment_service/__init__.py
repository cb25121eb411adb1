"""The Switchyard payment service: wallets, payments and refunds on a
double-entry ledger, with idempotency keys and a transactional outbox."""
