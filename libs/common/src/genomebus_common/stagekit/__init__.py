"""What a pipeline stage is made of: tools, scratch space, the stage loop, the consent view, energy, references, scatter."""
