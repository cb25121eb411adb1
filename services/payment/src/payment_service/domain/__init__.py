"""Plain Python: money, the ledger rules, payments and their state machine."""
