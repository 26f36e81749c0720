"""Platform facts shared by the simulator and the collectors (signing schemes, wire helpers).

Services must not import each other, yet both the simulator (which signs) and the collectors (which verify)
need byte-identical implementations of each platform's scheme; they live here, pure and dependency-light.
"""
