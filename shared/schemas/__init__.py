"""Request/response models of the user-data domains (`XCreate / XUpdate / XPublic / XPage`)."""
