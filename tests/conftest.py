import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Test helper modules (slide factories) live beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
