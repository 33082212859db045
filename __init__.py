"""ParaScale: transfer a camera move between scenes of any scale by matching its
Parallax Number. Blender entry point: registration only."""


def register():
    from . import operators, panels

    panels.register_properties()
    operators.register()
    panels.register()


def unregister():
    from . import operators, panels

    panels.unregister()
    operators.unregister()
    panels.unregister_properties()
