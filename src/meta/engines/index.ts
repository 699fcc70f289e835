// Registers every built-in engine with the registry (one import per engine).
import './sqlite/register.js';
import './postgres/register.js';
