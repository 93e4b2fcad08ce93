"""The shared contract: the only part of the helper the agent may import (see docs/structure.md)."""
