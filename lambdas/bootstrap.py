"""Create what the control plane expects to exist: the table and the fleet record.

For the local mode and tests (in AWS the CDK stack creates the table; reconcile creates the
records on its first run). Idempotent: running it again changes nothing.
"""

from __future__ import annotations

from lambdas.aws.clients import Clients
from lambdas.aws.store import create_table
from lambdas.settings import Settings


def bootstrap(settings: Settings, clients: Clients) -> None:
    create_table(clients.store.client, settings.table_name)
    clients.store.load_fleet()
