"""Operations: what administrators watch and the switches they turn.

- `hub.delivery.hops`: the seam the core calls (`Observer`, no-op by default) and the `Hop` it reports;
- `hub.ops.records`: operational records (one per attempt of a hop) and their queries;
- `hub.ops.controls`: shared switches (pause a connector, maintenance) and worker heartbeats;
- `hub.ops.observer`: `StoreObserver`, the observer `hub.runtime.Hub` injects by default;
- `hub.ops.queues`: queue figures from RabbitMQ's management API or the broker adapter;
- `hub.masking`: what may be shown to an administrator (no personal data).
"""
