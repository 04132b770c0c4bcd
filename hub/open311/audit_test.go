package open311
