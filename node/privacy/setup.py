"""Open the personal-data parts of a node from its config: subject-id hasher and off-chain store."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from node.privacy.key_vault import load_master_key, write_master_key
from node.privacy.offchain import OffchainStore
from node.privacy.subject_id import SubjectIdHasher, load_consortium_secret

logger = logging.getLogger("xinlian.privacy")

PRIVACY_DIRECTORY = "privacy"
MASTER_KEY_FILE = "master.key"


@dataclass
class NodePrivacy:
    hasher: SubjectIdHasher | None  # None when the config names no consortium secret file
    store: OffchainStore

    def close(self) -> None:
        self.store.close()


def open_node_privacy(data_dir: str | os.PathLike[str], secret_file: str | os.PathLike[str] | None) -> NodePrivacy:
    """Open `<data_dir>/privacy/`, creating the node's master key (mode 0600) on first start.

    The master key stays in the node's data directory; back it up apart from the
    data, because anyone who holds both can read every record not yet erased.
    """
    directory = Path(data_dir) / PRIVACY_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    master_key_path = directory / MASTER_KEY_FILE
    if not master_key_path.exists():
        write_master_key(master_key_path)
        logger.info("created off-chain master key at %s", master_key_path)
    store = OffchainStore(directory / "store", load_master_key(master_key_path))
    hasher = load_consortium_secret(secret_file) if secret_file is not None else None
    return NodePrivacy(hasher=hasher, store=store)
