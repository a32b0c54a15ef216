"""dovecote: Docker networks on Open vSwitch, every container a port FAUCET governs."""

__version__ = "0.1.0"
