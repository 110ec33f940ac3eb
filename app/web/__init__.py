"""HTTP plumbing shared by the mini-program, admin and open APIs. The domain never imports it."""
