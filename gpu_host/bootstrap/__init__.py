"""What sets up and guards the GPU instance: first boot, releases, rendered settings, watchdog.

Shell scripts install (first-boot.sh, bootstrap.sh); Python renders the settings
(`render_config`) and decides when to power off (`watchdog`). systemd runs them (systemd/).
"""
