"""Supervised cold start with verl's SFT trainer: `python -m verl_video.sft [key=value ...]`.

The driver lives in the verl adapter (verl_adapter/sft_driver.py); this module is only the documented command.
"""

from verl_video.verl_adapter.sft_driver import entry

if __name__ == "__main__":
    entry()
