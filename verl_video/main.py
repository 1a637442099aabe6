"""Train a video language model with verl's PPO trainer and our config: `python -m verl_video.main [key=value ...]`.

The driver lives in the verl adapter (verl_adapter/driver.py); this module is only the documented command.
"""

from verl_video.verl_adapter.driver import entry

if __name__ == "__main__":
    entry()
