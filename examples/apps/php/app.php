<?php
// qrphgate's example app in PHP (the built-in server, `php -S ... app.php`):
// a checkout page that creates an order's QR Ph through the qrphgate sidecar
// and shows it, and a webhook route that verifies the sidecar's
// Webhook-Signature with the standard library (HMAC-SHA256 over
// "id.timestamp.body", Standard Webhooks) and marks the order paid or
// declined. PHP keeps nothing between requests, so the orders and the
// applied Webhook-Ids live in a small JSON file (ORDERS_FILE), locked while
// a request reads and changes it.
declare(strict_types=1);

// The defaults match qrphgate's quickstart (examples/quickstart/Caddyfile).
// The port is the one `php -S 127.0.0.1:${PORT:-3000} app.php` listens on.
define('SIDECAR', rtrim(getenv('QRPHGATE_URL') ?: 'http://127.0.0.1:2090', '/'));
// The quickstart's obviously fake signing secret
// (examples/quickstart/fake-secrets/sign_secret). Never a real one.
define('SECRET', getenv('QRPHGATE_SIGNING_SECRET') ?: 'TEST-ONLY-fake-signing-secret-do-not-use');
define('ORDERS_FILE', getenv('ORDERS_FILE') ?: __DIR__ . '/data/orders.json');
define('TOLERANCE', 300); // seconds a Webhook-Timestamp may be off
define('MAX_BODY', 64 * 1024); // qrphgate's own max_body

// A whsec_ secret is base64; any other string is used as its bytes, as
// qrphgate's sign_secret does.
function signing_key(string $secret): string
{
    if (!str_starts_with($secret, 'whsec_')) {
        return $secret;
    }
    $key = base64_decode(substr($secret, 6), true);
    if ($key === false || $key === '') {
        throw new RuntimeException('QRPHGATE_SIGNING_SECRET: the part after whsec_ is not valid base64');
    }
    return $key;
}

// Standard Webhooks: HMAC-SHA256 of "id.timestamp.body" over the RAW body,
// base64, compared in constant time with every space-separated "v1,"
// signature; timestamps more than 5 minutes off are refused.
function verify_signature(string $id, string $ts, string $sigHeader, string $raw): bool
{
    if ($id === '' || $sigHeader === '' || !preg_match('/^[0-9]+$/D', $ts)) {
        return false;
    }
    if (abs(time() - (int)$ts) > TOLERANCE) {
        return false;
    }
    $want = base64_encode(hash_hmac('sha256', "$id.$ts.$raw", signing_key(SECRET), true));
    foreach (explode(' ', $sigHeader) as $s) {
        if (str_starts_with($s, 'v1,') && hash_equals($want, substr($s, 3))) {
            return true;
        }
    }
    return false;
}

// Runs $fn on the store {"orders": {...}, "seen": {webhookId: true}} under
// an exclusive lock and writes back what it returns as the store's new
// state; the call returns $fn's second result.
function with_store(callable $fn): mixed
{
    $dir = dirname(ORDERS_FILE);
    if (!is_dir($dir) && !mkdir($dir, 0700, true) && !is_dir($dir)) {
        throw new RuntimeException("cannot create $dir");
    }
    $f = fopen(ORDERS_FILE, 'c+');
    if ($f === false || !flock($f, LOCK_EX)) {
        throw new RuntimeException('cannot open ' . ORDERS_FILE);
    }
    try {
        $data = json_decode((string)stream_get_contents($f), true) ?: [];
        $store = ['orders' => $data['orders'] ?? [], 'seen' => $data['seen'] ?? []];
        [$new, $result] = $fn($store);
        if ($new !== null) {
            ftruncate($f, 0);
            rewind($f);
            fwrite($f, json_encode($new, JSON_UNESCAPED_SLASHES));
            fflush($f);
        }
        return $result;
    } finally {
        flock($f, LOCK_UN);
        fclose($f);
    }
}

// POST /v1/pay/qr on the sidecar: plain JSON, no credentials.
// Returns [status, decoded answer]; status 0 when it cannot be reached.
function create_qr(string $amount, string $reference): array
{
    $ctx = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\n",
        'content' => json_encode(['amount' => $amount, 'currency' => 'PHP', 'merchantReferenceNumber' => $reference]),
        'timeout' => 30,
        'ignore_errors' => true, // read error answers too
    ]]);
    $body = @file_get_contents(SIDECAR . '/v1/pay/qr', false, $ctx);
    if ($body === false || !isset($http_response_header[0])) {
        return [0, []];
    }
    preg_match('{^HTTP/\S+ (\d{3})}', $http_response_header[0], $m);
    $answer = json_decode($body, true);
    return [(int)($m[1] ?? 0), is_array($answer) ? $answer : []];
}

function h(mixed $s): string
{
    return htmlspecialchars((string)$s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
}

function page(int $status, string $body): void
{
    http_response_code($status);
    header('Content-Type: text/html; charset=utf-8');
    echo '<!doctype html><meta charset="utf-8"><title>Checkout (PHP)</title>', "\n",
        '<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}td,th{padding:.2em .8em;text-align:left}</style>', "\n",
        $body;
}

function error_page(int $status, string $message): void
{
    page($status, '<h1>Something went wrong</h1><p>' . h($message) . '</p><p><a href="/">Back</a></p>');
}

function json_answer(int $status, array $v): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($v, JSON_UNESCAPED_SLASHES), "\n";
}

// GET /: the checkout form and the orders.
function index(): void
{
    $orders = with_store(fn($s) => [null, $s['orders']]);
    $rows = '';
    foreach (array_reverse($orders) as $o) {
        $rows .= '<tr><td><a href="/orders/' . h($o['reference']) . '">' . h($o['reference']) . '</a></td><td>'
            . h($o['amount']) . ' ' . h($o['currency']) . '</td><td>' . h($o['status']) . "</td></tr>\n";
    }
    page(200, '<h1>Checkout</h1>
<form method="post" action="/orders">
<label>Amount (PHP) <input name="amount" value="500.00" pattern="[0-9]+\.[0-9]{2}" required></label>
<button>Pay with QR Ph</button>
</form>
<h2>Orders</h2>
<table><tr><th>reference</th><th>amount</th><th>status</th></tr>
' . ($rows ?: '<tr><td colspan="3">none yet</td></tr>') . '
</table>');
}

// POST /orders (the form): ask the sidecar for a QR, then show the order.
function create_order(): void
{
    $amount = trim((string)($_POST['amount'] ?? ''));
    $reference = 'ORDER-' . bin2hex(random_bytes(8));
    [$status, $answer] = create_qr($amount, $reference);
    if ($status === 0) {
        error_log("create $reference: the sidecar cannot be reached");
        error_page(502, 'the sidecar cannot be reached at ' . SIDECAR);
        return;
    }
    if ($status !== 200 || empty($answer['id']) || empty($answer['qrBody'])) {
        $e = $answer['error'] ?? [];
        $message = "the sidecar answered $status " . ($e['code'] ?? '') . ': ' . ($e['message'] ?? 'no id or qrBody');
        error_log("create $reference: $message");
        error_page($status === 400 ? 400 : 502, $message);
        return;
    }
    $order = [
        'reference' => $reference, 'amount' => $amount, 'currency' => 'PHP', 'status' => 'PENDING',
        'transactionId' => $answer['id'], 'expiresAt' => $answer['expiresAt'] ?? '',
        'createdAt' => gmdate('Y-m-d\TH:i:s\Z'), 'webhookIds' => [], 'qrBody' => $answer['qrBody'],
    ];
    with_store(function ($s) use ($order) {
        $s['orders'][$order['reference']] = $order;
        return [$s, null];
    });
    error_log("order $reference: QR {$answer['id']}");
    header('Location: /orders/' . $reference, true, 303);
}

// GET /orders/{ref} (the page with the QR) and /orders/{ref}.json (the order).
function show_order(string $ref): void
{
    $asJSON = str_ends_with($ref, '.json');
    if ($asJSON) {
        $ref = substr($ref, 0, -5);
    }
    $o = with_store(fn($s) => [null, $s['orders'][$ref] ?? null]);
    if ($o === null) {
        $asJSON ? json_answer(404, ['error' => 'no such order']) : error_page(404, 'no such order');
        return;
    }
    if ($asJSON) {
        unset($o['qrBody']);
        json_answer(200, $o);
        return;
    }
    $pending = $o['status'] === 'PENDING';
    page(200, ($pending ? '<meta http-equiv="refresh" content="2">' : '') . '
<h1>Order ' . h($o['reference']) . '</h1>
<p>' . h($o['amount']) . ' ' . h($o['currency']) . ': <strong id="status">' . h($o['status']) . '</strong></p>
' . ($pending ? '<p>Scan to pay (valid until ' . h($o['expiresAt']) . '). In the quickstart, pay it on the
simulator\'s page, <a href="http://127.0.0.1:2091/sandbox/">http://127.0.0.1:2091/sandbox/</a>.</p>
<img alt="QR Ph code" src="data:image/png;base64,' . h($o['qrBody']) . '">' : '') . '
<p><a href="/">Back</a></p>');
}

// POST /payments/modulus, qrphgate's forward_to. The signature is checked
// on the raw body bytes before anything parses them, and only then is the
// Webhook-Id recorded, so a forged delivery cannot burn a real id.
function webhook(): void
{
    $raw = (string)file_get_contents('php://input', false, null, 0, MAX_BODY + 1);
    if (strlen($raw) > MAX_BODY) {
        json_answer(413, ['error' => 'body too large']);
        return;
    }
    $id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
    if (!verify_signature($id, $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '', $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '', $raw)) {
        error_log('webhook refused: bad or missing signature, or stale timestamp');
        json_answer(401, ['error' => 'invalid signature']);
        return;
    }
    $event = json_decode($raw);
    if (!($event instanceof stdClass)) {
        json_answer(400, ['error' => 'body is not a JSON object']);
        return;
    }
    $event = (array)$event;
    $action = $event['action'] ?? null;
    $reference = $event['referenceNumber'] ?? $event['merchantReferenceNumber'] ?? null;
    $result = with_store(function ($s) use ($id, $action, $reference) {
        if (isset($s['seen'][$id])) {
            return [null, 'duplicate'];
        }
        $s['seen'][$id] = true;
        if (!is_string($reference) || !isset($s['orders'][$reference])) {
            return [$s, 'unknownOrder'];
        }
        $o = &$s['orders'][$reference];
        $o['webhookIds'][] = $id;
        // A paid order stays paid: deliveries can arrive out of order.
        if ($action === 'QRPH_SUCCESS') {
            $o['status'] = 'PAID';
        } elseif ($action === 'QRPH_DECLINED' && $o['status'] !== 'PAID') {
            $o['status'] = 'DECLINED';
        }
        return [$s, 'applied'];
    });
    switch ($result) {
        case 'duplicate':
            error_log("webhook $id: already applied");
            json_answer(200, ['received' => true, 'duplicate' => true]);
            break;
        case 'unknownOrder':
            // Acknowledge: retrying would not make the order appear.
            error_log("webhook $id: $action for unknown order " . json_encode($reference));
            json_answer(200, ['received' => true, 'unknownOrder' => true]);
            break;
        default:
            error_log("webhook $id: $action for order $reference");
            json_answer(200, ['received' => true]);
    }
}

$method = $_SERVER['REQUEST_METHOD'];
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
if ($method === 'GET' && $path === '/') {
    index();
} elseif ($method === 'POST' && $path === '/orders') {
    create_order();
} elseif ($method === 'GET' && preg_match('{^/orders/([A-Za-z0-9-]+(?:\.json)?)$}D', $path, $m)) {
    show_order($m[1]);
} elseif ($method === 'POST' && $path === '/payments/modulus') {
    webhook();
} else {
    error_page(404, 'not found');
}
