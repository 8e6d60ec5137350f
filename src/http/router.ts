// Route table: method + path pattern (`/admin/:id`) → route. Patterns are matched segment by
// segment; a literal segment wins over a parameter, so `/admins/meta` is not `/admin/:id`-like
// ambiguity-prone. A last segment `*name` takes the rest of the path (one or more segments, e.g. a
// file path inside a repository). Unknown path → 404, known path with another method → 405.
import { methodNotAllowed, notFound } from './errors.js';

/** What the router reads of a route. */
interface Routable {
  method: string;
  path: string;
}

interface Node<R> {
  literal: Map<string, Node<R>>;
  param?: { name: string; node: Node<R> };
  /** `*name`: the remaining segments, joined by `/`, each decoded. */
  rest?: { name: string; node: Node<R> };
  routes: Map<string, R>;
}

const newNode = <R>(): Node<R> => ({ literal: new Map(), routes: new Map() });

export interface Match<R> {
  route: R;
  params: Record<string, string>;
}

export class Router<R extends Routable> {
  private readonly root = newNode<R>();
  readonly routes: R[] = [];

  constructor(routes: readonly R[] = []) {
    for (const route of routes) this.add(route);
  }

  add(route: R): void {
    let node = this.root;
    const segments = split(route.path);
    for (const [i, segment] of segments.entries()) {
      if (segment.startsWith('*')) {
        if (i !== segments.length - 1) throw new Error(`${route.path}: ${segment} must be the last segment`);
        const name = segment.slice(1);
        if (node.rest && node.rest.name !== name) throw new Error(`${route.path}: parameter ${segment} clashes with *${node.rest.name}`);
        node.rest ??= { name, node: newNode<R>() };
        node = node.rest.node;
      } else if (segment.startsWith(':')) {
        const name = segment.slice(1);
        if (node.param && node.param.name !== name)
          throw new Error(`${route.path}: parameter :${name} clashes with :${node.param.name}`);
        node.param ??= { name, node: newNode<R>() };
        node = node.param.node;
      } else {
        let next = node.literal.get(segment);
        if (!next) node.literal.set(segment, (next = newNode<R>()));
        node = next;
      }
    }
    if (node.routes.has(route.method)) throw new Error(`duplicate route ${route.method} ${route.path}`);
    node.routes.set(route.method, route);
    this.routes.push(route);
  }

  /** The route for method + path, or a 404/405 HttpError. */
  match(method: string, path: string): Match<R> {
    const params: Record<string, string> = {};
    const node = this.walk(this.root, split(path), 0, params);
    if (!node || node.routes.size === 0) throw notFound(`No such endpoint: ${path}`);
    const route = node.routes.get(method) ?? (method === 'HEAD' ? node.routes.get('GET') : undefined);
    if (!route) throw methodNotAllowed([...node.routes.keys()]);
    return { route, params };
  }

  private walk(node: Node<R>, segments: string[], i: number, params: Record<string, string>): Node<R> | undefined {
    if (i === segments.length) return node;
    const segment = segments[i]!;
    const literal = node.literal.get(segment);
    if (literal) {
      const found = this.walk(literal, segments, i + 1, params);
      if (found && found.routes.size > 0) return found;
    }
    if (node.param) {
      const found = this.walk(node.param.node, segments, i + 1, params);
      if (found) {
        params[node.param.name] = safeDecode(segment);
        return found;
      }
    }
    if (node.rest && node.rest.node.routes.size > 0) {
      params[node.rest.name] = segments.slice(i).map(safeDecode).join('/');
      return node.rest.node;
    }
    return undefined;
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function safeDecode(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
