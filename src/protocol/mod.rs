//! Pure wire layer: packet codec, handshake, auth scrambles, OK/ERR/EOF, commands.
