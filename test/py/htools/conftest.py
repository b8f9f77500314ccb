"""Make the builders importable by the htools tests."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
