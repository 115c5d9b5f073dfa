"""gridledger: a blockchain-based peer-to-peer energy market for smart grids.

The public surface is small on purpose; each domain folder (``market``, ``metering``,
``settlement``, ``ledger``, ``grid``, ``sim``, ``security``, ``store``, ``api``) exports its own.
"""

from gridledger.config import Settings, load_settings
from gridledger.errors import GridledgerError

__version__ = "0.1.0"
__all__ = ["GridledgerError", "Settings", "__version__", "load_settings"]
